#!/usr/bin/env python3
"""Reduce a .proto file to its wire facts (packages, messages, fields, enums, services) in our own layout.

Used once to check our proto/ files against a reference; comments, Go options and HTTP annotations are
dropped because they are not part of the wire format.
"""
import re, sys

def strip(text: str) -> str:
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'option\s*\(google\.api\.http\)\s*=\s*\{.*?\};', '', text, flags=re.S)
    text = re.sub(r'option\s*\([^)]*\)[^;]*;', '', text)
    text = re.sub(r'option\s+go_package[^;]*;', '', text)
    text = re.sub(r'import\s+"(gogoproto|google)/[^"]*";', '', text)
    text = re.sub(r'\[\s*\((gogoproto|google)[^\]]*\]', '', text)
    text = re.sub(r'\)\s*\{\s*\}', ');', text)
    return text

def layout(text: str) -> str:
    out, depth = [], 0
    for raw in text.replace('{', '{\n').replace('}', '\n}\n').replace(';', ';\n').split('\n'):
        line = ' '.join(raw.split())
        if not line:
            continue
        if line.startswith('}'):
            depth -= 1
        line = re.sub(r'\s+;', ';', line)
        out.append('  ' * depth + line)
        if line.endswith('{'):
            depth += 1
    res, prev_close = [], False
    for line in out:
        if prev_close and line.strip() and not line.strip().startswith('}') and line.startswith(('message', 'enum', 'service')):
            res.append('')
        res.append(line)
        prev_close = line.strip() == '}' and not line.startswith(' ')
    return '\n'.join(res) + '\n'

if __name__ == '__main__':
    sys.stdout.write(layout(strip(open(sys.argv[1]).read())))
