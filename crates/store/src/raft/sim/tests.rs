use super::*;

#[test]
fn placeholder() {
    let mut c = Cluster::new(3, 1);
    c.settle(200);
}
