"""Environment for every test run, notebooks included (nbval's kernels inherit it).

Each default is set only when the variable is unset, so `COURSE_QUICK=0 pytest
notebooks/solutions` runs the long lessons at full size before teaching.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.setdefault("COURSE_SHARED_DATA", str(ROOT.parent / "shared" / "data")))

# Smoke-test sizes for the training lessons, and a throwaway download cache: a test run
# never writes into the repository's data/ folder.
os.environ.setdefault("COURSE_QUICK", "1")
if "COURSE_DATA_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="course-data-")
    os.environ["COURSE_DATA_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

# Real data, when ../shared/data is present (it is in CI); never copied into the repo.
for variable, relative in {
    "NLTK_DATA": "nltk_data",
    "COURSE_YELP_TRAIN": "yelp/kaggle_yelp10k/train.csv",
    "COURSE_YELP_TEST": "yelp/kaggle_yelp10k/test.csv",
    "COURSE_CROWS_PAIRS": "crows_pairs/crows_pairs_anonymized.csv",
}.items():
    if (SHARED / relative).exists():
        os.environ.setdefault(variable, str(SHARED / relative))
