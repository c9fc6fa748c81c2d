"""Suite-wide isolation: the suite never reads or writes the home folder of the machine it runs on.

ONE-api (the test oracle) and Prefect both keep settings under the home folder, so HOME points at a
fresh temporary folder before either is imported.
"""

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="one-flows-home-")
os.environ["HOME"] = _HOME
os.environ["PREFECT_HOME"] = os.path.join(_HOME, ".prefect")
for _var in ("ALYX_URL", "ALYX_LOGIN", "ALYX_PASSWORD", "ALYX_TOKEN", "PREFECT_API_URL"):
    os.environ.pop(_var, None)
