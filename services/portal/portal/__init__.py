"""Fabrique web portal: the platform's pages for people, over the three public APIs."""
