"""The version of nasx (recorded with benchmark scores and shown by ``nasx --version``)."""

__version__ = "0.1.0"
