from sandboxes.cli import main

main()
