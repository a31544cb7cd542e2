"""The levels ``Config(usage_tracking=...)`` accepts, with Parsl's values. Whatever the level,
parsl_repro sends nothing: the field exists so Parsl configurations load unchanged."""

DISABLED = 0
LEVEL_1 = 1
LEVEL_2 = 2
LEVEL_3 = 3
