//go:build !unix

package main

import "os"

// jobControl is empty where there is no job control.
var jobControl []os.Signal
