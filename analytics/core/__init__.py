"""The ground everything stands on: the tables (models), connecting (database), filter
parameters, the calendar of ISO weeks and slice keys."""
