"""Distributed pre-training on instruct-pt's token batches."""
