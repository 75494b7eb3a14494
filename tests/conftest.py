"""Session-wide setup for resdsl's tests."""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The PyTorch and TensorFlow targets' tests share this process. torch.optim imports
# torch._dynamo on first use, and that import crashes (SIGSEGV) once TensorFlow's native
# libraries are loaded; importing it before TensorFlow avoids the crash. Generated code never
# loads both frameworks, so only the tests need this.
with contextlib.suppress(ImportError):
    import torch._dynamo  # noqa: F401
