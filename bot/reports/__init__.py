"""The command centre's numbers: the three rates, the report files, the monthly brief."""
