"""fabkit: Fabrique's common infrastructure library (no domain code lives here)."""

# The platform's one version: every package's metadata and every OpenAPI document read it here.
__version__ = "0.2.0"
