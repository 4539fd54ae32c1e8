"""The setup wizard: five guided pages from use case to launch, one module per page."""
