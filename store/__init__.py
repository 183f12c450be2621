"""The stored state: models, column types, the database session and the clock. The bottom
layer beside connectors/ and rules/: it imports none of Dunwell's other packages."""
