"""The command-line predictor: the reference's "test my own image" for files and folders."""
