// Command standin is the model of the Compose test (deploy/compose): the
// stand-in inference server of internal/standin on 127.0.0.1:11434, where
// Ollama listens, until SIGTERM. It is built static into a FROM scratch
// image that takes the model container's place; it is not shipped.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moatmesh/moat/internal/standin"
)

func main() {
	s, err := standin.Start(11434, 10*time.Millisecond)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
	fmt.Println("standin: serving on", s.URL)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	s.Close()
}
