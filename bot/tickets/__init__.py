"""A ticket's life: the one writer of state (lifecycle), deadlines, guards, what staff
and residents do by button or by words, getting a ticket to its grid, queries, the sweeper."""
