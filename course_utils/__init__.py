"""Helpers for the Transformers from Scratch course.

Reference solutions, checkers, data loaders, plots and widgets live here so the
notebooks stay short and never paste helper code. Lessons import what they need::

    from course_utils import get_device, set_seed
    from course_utils.exercises import check
"""

from course_utils.device import get_device, set_seed

__all__ = ["get_device", "set_seed"]
__version__ = "0.1.0"
