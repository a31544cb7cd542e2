"""``DataFuture`` at Parsl's path; it lives in ``parsl_repro.data_provider.data_future``, below the apps."""
from parsl_repro.data_provider.data_future import DataFuture

__all__ = ["DataFuture"]
