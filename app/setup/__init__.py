"""The owner's first hour: a new organisation in review, a starting policy, the sender, a test
to oneself, the first week previewed, fees acknowledged, then Go live."""
