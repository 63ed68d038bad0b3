// Command hello is the floor: a Go hello-world.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
