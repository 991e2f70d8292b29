"""What people read: tables, the report's sections (one list, three renderings), charts,
history and compare, all made from records alone.
"""
