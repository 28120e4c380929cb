// Command validate loads deploy/compose/compose.yaml the way `docker compose config` does,
// with compose-go (the library behind Docker Compose): the Compose Specification's JSON
// schema, interpolation, merge keys, paths and cross-references. No Docker engine needed.
//
//	go run . ../compose.yaml
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: validate COMPOSE_FILE")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithOsEnv,
		cli.WithProfiles([]string{"tools"}),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := cli.ProjectFromOptions(context.Background(), options)
	if err != nil {
		fail(err)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("compose-go: %s is valid: %d services %v, %d volumes\n", os.Args[1], len(names), names, len(project.Volumes))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-go:", err)
	os.Exit(1)
}
