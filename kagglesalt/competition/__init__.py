"""The competition's rules and formats, on numpy and pandas alone: the run-length encoding
(`rle`), the score (`metric`), mask post-processing (`postprocess`) and the submission CSV
(`submission`)."""
