"""Reading ECG datasets, the one preprocessing function, and the packed store."""
