"""The report's sections, one module per topic of the lecture; each builds a `Section`."""
