"""The .qkt language: lexer, parser, checker and compiler to a `Program`."""
