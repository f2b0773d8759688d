"""Reads stored results only and writes pictures, tables and the HTML report."""
