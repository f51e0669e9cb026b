"""The `alphacut` command line: the only place besides the server that prints or exits."""
