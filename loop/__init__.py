"""The closed loop: periods, trends and early warning over tracked problems (imports tools.* only)."""
