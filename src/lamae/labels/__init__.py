"""Diagnosis labels (the ICD-10-CM hierarchy) and patient-level splits."""
