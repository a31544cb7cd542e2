"""Apps: the decorators that turn functions into task factories returning futures."""
