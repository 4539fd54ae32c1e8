"""Qt views of the runs library: the library page, the comparison and the playground."""
