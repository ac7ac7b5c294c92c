// Command benchsummary reads `make bench` output on standard input and
// prints the table of figures against their targets (package
// benchsummary).
package main

import (
	"log"
	"os"

	"github.com/moatmesh/moat/internal/benchsummary"
)

func main() {
	figs, err := benchsummary.Parse(os.Stdin)
	if err != nil {
		log.Fatal("benchsummary: ", err)
	}
	benchsummary.Write(os.Stdout, benchsummary.Targets, figs)
}
