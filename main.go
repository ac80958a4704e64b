// Command vpnauthz is the vpnauthz function for Alibaba Cloud Function Compute 3.0,
// and a local CLI when not run by FC.
package main

func main() {}
