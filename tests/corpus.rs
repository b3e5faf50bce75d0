mod corpus_placeholder {}
