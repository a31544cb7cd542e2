"""Run every task on threads of this Python process (Parsl's first tutorial config)."""
from parsl_repro.config import Config
from parsl_repro.executors.threads import ThreadPoolExecutor
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[ThreadPoolExecutor()],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
