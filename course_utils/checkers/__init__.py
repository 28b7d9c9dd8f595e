"""Exercise checkers, one module per lesson topic; the registry is ``course_utils.exercises``."""
