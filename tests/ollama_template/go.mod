module studio/ollama_template

go 1.19
