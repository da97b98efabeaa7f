"""Generated tasks from the S4 / HiPPO / H3 / Mamba literature: no files, seeded, any size.

copying.py (copying and selective copying), adding.py, delay.py, induction_heads.py,
associative_recall.py; base.py holds the per-example seeding they share.
"""
