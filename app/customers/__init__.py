"""Credit control: customer risk, predicted pay dates, limits and holds, statements."""
