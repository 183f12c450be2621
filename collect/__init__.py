"""The collections logic the web and the jobs share."""
