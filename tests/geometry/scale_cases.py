"""Scales for the properties that every estimator is free of the data's units (issue 11).

The samples are built in float64 (coordinates of order 0.1 to 10), scaled there and then cast, so
the scaled input is representable in both precisions at every scale drawn: the largest stays below
the dtype's maximum and the smallest, of order 2^-30 of the largest, stays a normal number.
"""

import torch

#: Powers of two 2^p with |p| up to this, per dtype: about 1e±30 in float32 and 1e±301 in float64.
#: Multiplying by them is exact, so the estimates must be exactly those of the unscaled sample.
POW2_EXPONENT = {torch.float32: 99, torch.float64: 1000}

#: Powers of ten 10^p with |p| up to this, per dtype (the range of the issue: 1e-30 … 1e30; float64
#: reaches 1e200, where pca_dimension used to return 0).
DECIMAL_EXPONENT = {torch.float32: 30, torch.float64: 300}
