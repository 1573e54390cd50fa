"""Root conftest: hypothesis profiles shared by tests/, benchmarks/ and claims/."""

import os

from hypothesis import HealthCheck, settings

# Math on tensors is slow for hypothesis' default deadline on a 2-core CPU; examples stay few.
settings.register_profile(
    "default", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=300)
# scripts/mutation.sh: every mutant runs the properties that call its function, so few examples, the
# same ones for every mutant (a kill must not depend on the draw)
settings.register_profile(
    "mutation",
    deadline=None,
    max_examples=8,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))
