// Command ollama_template renders an Ollama Modelfile TEMPLATE the way Ollama does, for Studio's tests.
//
// It reads {"template": "...", "messages": [{"role": "...", "content": "..."}, ...]} as JSON on stdin and
// writes the rendered prompt to stdout. It follows Ollama's template package (template/template.go):
// the template is parsed by Go's text/template with missingkey=zero and Ollama's "json" function, the
// messages are collated (all system messages joined into .System with a blank line, consecutive messages
// of one role merged), and a template that uses .Messages gets .System, .Messages, .Tools and an empty
// .Response. Ollama's older per-turn .Prompt/.Response rendering is not implemented: Studio's templates all
// use .Messages, and this program refuses any that does not.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
)

// Message carries the fields of Ollama's api.Message that a chat template reads.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Template string    `json:"template"`
	Messages []Message `json:"messages"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
}

// collate is Ollama's: the system prompt of all system messages, and the messages with consecutive
// messages of the same role merged (system messages stay in the list).
func collate(msgs []Message) (string, []*Message) {
	var system []string
	var collated []*Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), collated
}

// identifiers lists the field and variable names a template uses, as Ollama's Identifiers does.
func identifiers(n parse.Node) []string {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, c := range n.Nodes {
			names = append(names, identifiers(c)...)
		}
		return names
	case *parse.TemplateNode:
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		names := identifiers(n.Pipe)
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				names = append(names, identifiers(l)...)
			}
		}
		return names
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				names = append(names, identifiers(a)...)
			}
		}
		return names
	case *parse.FieldNode:
		return n.Ident
	case *parse.VariableNode:
		return n.Ident
	}
	return nil
}

func usesMessages(t *template.Template) bool {
	for _, tt := range t.Templates() {
		for _, name := range identifiers(tt.Root) {
			if strings.ToLower(name) == "messages" {
				return true
			}
		}
	}
	return false
}

func run() error {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(req.Template)
	if err != nil {
		return fmt.Errorf("parsing the template: %w", err)
	}
	if !usesMessages(tmpl) {
		return fmt.Errorf("the template does not use .Messages; this checker renders only such templates")
	}
	system, messages := collate(req.Messages)
	return tmpl.Execute(os.Stdout, map[string]any{
		"System":   system,
		"Messages": messages,
		"Tools":    nil,
		"Response": "",
	})
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ollama_template:", err)
		os.Exit(1)
	}
}
