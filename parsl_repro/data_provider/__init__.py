"""Data: ``File`` objects, the futures that stand for files not yet written, and staging."""
