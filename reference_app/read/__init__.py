"""The read side: denormalized read models and the projections that keep them current.

Query handlers here answer from the read models only, never from the write model.
"""
