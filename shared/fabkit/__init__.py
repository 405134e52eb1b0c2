"""fabkit: Fabrique's common infrastructure library (no domain code lives here)."""
