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
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))
