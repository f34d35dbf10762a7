"""devise-keras: DeViSE (Frome et al., NIPS 2013) in Keras 3.

DeViSE tops an image model with a linear projection into a word-vector space and
trains it with a hinge rank loss against unit-norm label vectors, so the model can
rank labels it never saw in training (zero-shot).
"""

import os

# Keras 3 only. tfx imports tensorflow_transform, which sets TF_USE_LEGACY_KERAS=1
# when it is unset; Beam workers inherit the environment. Set it before TensorFlow
# is imported anywhere in this process.
os.environ["TF_USE_LEGACY_KERAS"] = "0"

__version__ = "0.1.0"
