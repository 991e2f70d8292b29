"""The bottom layer: errors, the case spec, metric definitions, the record, files and formats.

Standard library and numpy only; every other layer builds on these.
"""
