"""batchnb: batch document extraction for Jupyter."""
