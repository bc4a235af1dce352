terraform {
  # optional() object attributes with defaults (1.3), and preconditions (1.2).
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.7, < 9.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.8, < 3.0"
    }
  }
}
