package main

// newline ends the lines of the log files: Windows text files use CRLF.
const newline = "\r\n"
